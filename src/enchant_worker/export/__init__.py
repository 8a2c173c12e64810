"""Export of a story: one document model (`document`) built from the story's data (`story_data`), and
one writer module per format (`json_writer`, `html_writer`, `epub_writer`, `pdf_writer`, `video_writer`).

Nothing here knows of the queue: `handlers/export_story.py` glues it to a job.
"""
