"""Text: books in (plain text, Markdown, EPUB → chapters) and scene analysis (chapters → scenes,
characters, locations, emotions). Knows nothing of the queue or the database; torch-free except the
`llm` analyzer, which imports transformers lazily."""
