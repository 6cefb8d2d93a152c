"""Staff notices travel as one string: Vietnamese first, English (with the detail) on the line below."""
from kiosk import notices


def test_a_notice_is_vietnamese_then_english():
    text = notices.staff("Máy in lỗi; vui lòng kiểm tra máy in", "Printer fault: no paper")
    assert text.splitlines() == ["Máy in lỗi; vui lòng kiểm tra máy in", "Printer fault: no paper"]
    assert notices.split(text) == ("Máy in lỗi; vui lòng kiểm tra máy in", "Printer fault: no paper")


def test_several_notices_keep_their_languages_apart():
    joined = notices.join([notices.staff("A lỗi", "A fault"), None, notices.staff("B lỗi", "B fault")])
    assert joined == "A lỗi · B lỗi\nA fault · B fault"
    assert notices.join([None, ""]) is None


def test_a_one_line_notice_made_the_old_way_still_shows_on_the_first_line():
    assert notices.split("Camera lỗi / camera: unplugged") == ("Camera lỗi / camera: unplugged", "")
    assert notices.join(["Camera lỗi / camera: unplugged"]) == "Camera lỗi / camera: unplugged"
    assert notices.join(["Old / old", notices.staff("Mới", "New")]) == "Old / old · Mới\nNew"


def test_a_damaged_data_file_is_named_in_the_english_line():
    vi, en = notices.split(notices.data_notice("visits/2026-10.jsonl: 20 records lost"))
    assert "dữ liệu" in vi and en == "Data: visits/2026-10.jsonl: 20 records lost"
