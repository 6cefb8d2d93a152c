"""The consent question, word for word: the screen shows it and every enrolment stores it.

One source for both, so the record of what a citizen agreed to is exactly what they read.
Changing a word here makes a new consent text version in the store.
"""
QUESTION = ("Lưu khuôn mặt để lần sau nhận ra Ông/Bà?", "May the kiosk recognise you next time?")
PROMISES = (
    ("Chỉ lưu mẫu khuôn mặt dạng số, không lưu ảnh.", "Only a face template (numbers) is kept, never a photo."),
    ("Xoá ngay khi Ông/Bà yêu cầu.", "Deleted whenever you ask."),
)
CONSENT_TEXT = "\n".join(line for pair in (QUESTION, *PROMISES) for line in pair)
