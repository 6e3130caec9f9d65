"""Face watchlist core: alignment, embedding, enrolment quality, 1:N matching and track votes.

Off by default and not wired into the pipeline: this package holds only the measured parts
(docs/watchlist.md). Authorisation, storage of enrolled people, enrolment commands and the
two-person adjudication of matches live elsewhere. Importing it loads numpy only; OpenCV and
onnxruntime are imported by the modules that need them.
"""
