"""The consent question, word for word: the screen shows it, the receipt prints it and every enrolment stores it.

One source for all three, so the record of what a citizen agreed to is exactly what they read. The wording names
the office that keeps the data and the months it is kept (the config), so it is built from them; its version is
the hash of the whole text, and a change of office, of retention or of a word makes a new version in the store.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

LAW_VI = "Nghị định 13/2023/NĐ-CP, Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15"
LAW_EN = "Decree 13/2023, Personal Data Protection Law No. 91/2025"


@dataclass(frozen=True)
class ConsentWording:
    """What the citizen is told before agreeing: short on screen, in full on the receipt (Vietnamese first)."""
    office: str
    templates_months: int
    card_months: int

    @property
    def question(self) -> tuple[str, str]:
        return ("Lưu khuôn mặt để lần sau nhận ra Ông/Bà?", "May the kiosk recognise you next time?")

    @property
    def promises(self) -> tuple[tuple[str, str], ...]:
        """The screen's short form: what, who, why, how long, how to withdraw."""
        return (
            ("Dữ liệu nhạy cảm: mẫu khuôn mặt dạng số, không lưu ảnh.",
             "Sensitive data: a face template (numbers), never a photo."),
            (f"{self.office} lưu {self.templates_months} tháng từ lần đến cuối, để nhận ra Ông/Bà.",
             f"Kept by {self.office} for {self.templates_months} months after your last visit, to know you."),
            ("Rút lại bất cứ lúc nào: đưa mã QR trên phiếu vào camera.",
             "Withdraw any time: show the receipt's QR code to the camera."),
        )

    @property
    def receipt(self) -> tuple[str, ...]:
        """The receipt's full form, every fact the law asks for (the consent receipt prints these lines)."""
        return (
            f"Mẫu khuôn mặt là dữ liệu cá nhân nhạy cảm ({LAW_VI}).",
            f"A face template is sensitive personal data ({LAW_EN}).",
            f"Bên lưu giữ: {self.office}.",
            f"Kept by: {self.office}.",
            "Mục đích: nhận ra Ông/Bà ở những lần đến sau và liên kết các lần đến với hồ sơ của Ông/Bà.",
            "Purpose: to recognise you on later visits and link your visits to your record.",
            "Chỉ lưu mẫu khuôn mặt dạng số, không lưu ảnh.",
            "Only a face template (numbers) is kept, never a photo.",
            f"Thời hạn: mẫu khuôn mặt {self.templates_months} tháng, dữ liệu thẻ CCCD (nếu có) {self.card_months} "
            f"tháng kể từ lần đến gần nhất.",
            f"Kept: the face template {self.templates_months} months, ID-card data (if any) {self.card_months} months "
            f"after your last visit.",
            "Rút lại đồng ý, xoá hoặc xem dữ liệu: đưa mã QR dưới đây vào camera của kiosk, hoặc báo nhân viên "
            "mã công dân ở trên.",
            "To withdraw, delete or see your data: show the QR code below to the kiosk's camera, or tell the staff "
            "the citizen id above.",
        )

    @cached_property
    def text(self) -> str:
        """Everything the citizen was shown and given, as the store keeps it with each consent."""
        return "\n".join([*(line for pair in (self.question, *self.promises) for line in pair), *self.receipt])

    @property
    def version(self) -> str:
        """The store's name of this text (kiosk.store_citizens: sha256 of the text, 16 hex digits)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def consent_wording(office: str, templates_months: int = 12, card_months: int = 24) -> ConsentWording:
    """The wording for an office and its retention settings (``[kiosk] office``, ``[privacy] *_months``)."""
    return ConsentWording(office, templates_months, card_months)


SAMPLE = consent_wording("UBND phường Bến Nghé")   # screenshots and tests that do not care about the office
