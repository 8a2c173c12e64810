"""Books in: formats, encodings, chapter headings, and the bad inputs of the issue (each refused with a
message that says what to do, or read without loss)."""

from __future__ import annotations

import pytest

from enchant_worker.text.errors import BookTooLarge, UnreadableBook
from enchant_worker.text.ingest import read_book, read_file, read_limited

from .epubs import make_epub, with_drm

PROSE = "Mara climbed the stairs. The lamp flickered and went out.\n\nTobin waited below, afraid of the dark."


def test_plain_text_chapters_with_numbers_roman_numerals_and_words():
    text = (
        f"The Keeper\n\nChapter 1\n\n{PROSE}\n\nCHAPTER II. The Rescue\n\n{PROSE}\n\n"
        f"Chapter Three: Morning\n\n{PROSE}\n\nEpilogue\n\nIt ended well."
    )
    book = read_book(text.encode(), filename="keeper.txt")
    assert book.format == "text" and book.title == "The Keeper"
    assert [c.title for c in book.chapters] == [
        "Chapter 1",
        "CHAPTER II. The Rescue",
        "Chapter Three: Morning",
        "Epilogue",
    ]
    assert book.chapters[0].text == PROSE  # kept exactly
    assert [c.number for c in book.chapters] == [1, 2, 3, 4]


def test_markdown_lone_title_above_chapter_headings():
    text = f"# The Keeper\n\n## One\n\n{PROSE}\n\n## Two\n\n{PROSE}\n"
    book = read_book(text.encode(), filename="keeper.md")
    assert book.format == "markdown" and book.title == "The Keeper"
    assert [c.title for c in book.chapters] == ["One", "Two"]
    assert book.chapters[1].text == PROSE


def test_no_headings_is_one_chapter_and_says_so():
    book = read_book(PROSE.encode(), filename="story.txt")
    assert len(book.chapters) == 1 and book.chapters[0].text == PROSE
    assert any("no chapter headings" in n for n in book.notes)


def test_one_line_file_is_one_chapter():
    book = read_book(b"She opened the door.", filename="line.txt")
    assert [c.text for c in book.chapters] == ["She opened the door."]


def test_a_sentence_starting_with_chapter_is_not_a_heading():
    text = "Chapter one of her life had ended badly, and she knew that the next one would be worse still.\n\nYes."
    assert len(read_book(text.encode()).chapters) == 1


def test_empty_file_refused(tmp_path):
    for data in (b"", b"  \n\n\t "):
        with pytest.raises(UnreadableBook, match="empty"):
            read_book(data, filename="empty.txt")


def test_binary_file_refused_naming_why():
    with pytest.raises(UnreadableBook, match=r"looks binary \(a NUL byte at offset 4\)"):
        read_book(b"\x89PNG\x00\x00\x00\rIHDR" * 10, filename="cover.png")


def test_fifty_megabytes_refused_before_reading_naming_the_limit(tmp_path):
    big = tmp_path / "huge.txt"
    with big.open("wb") as f:
        f.truncate(50 * 2**20)  # sparse: nothing is written or read
    with pytest.raises(
        BookTooLarge,
        match=r"52,428,800 bytes; the ingest limit is 33,554,432 bytes "
        r"\(ENCHANT_INGEST_MAX_BYTES\)",
    ):
        read_file(big)


def test_streamed_upload_stops_at_the_limit():
    class Endless:
        reads = 0

        def read(self, n):
            self.reads += 1
            return b"x" * n

    stream = Endless()
    with pytest.raises(BookTooLarge, match="larger than the ingest limit of 3,145,728 bytes"):
        read_limited(stream, 3 * 2**20, "book.txt")
    assert stream.reads == 4  # bounded memory: stops right after passing the limit


def test_mixed_encodings_keep_every_character():
    utf8 = "Zoë sang a café song.\n".encode()
    legacy = "Señor Muñoz smiled — naïvely.\n".encode("cp1252")
    book = read_book(utf8 + legacy + utf8, filename="mixed.txt")
    text = book.chapters[0].text
    assert "Zoë sang a café song." in text and "Señor Muñoz smiled — naïvely." in text
    assert book.encoding.startswith("utf-8+")
    assert any("1 of 3 lines were not UTF-8" in n for n in book.notes)


def test_legacy_encoding_and_bom_and_crlf():
    book = read_book("Chapter 1\r\nÉlodie était là.\r\n".encode("utf-16"), filename="fr.txt")
    assert book.encoding == "utf-16" and book.chapters[0].text == "Élodie était là."
    book = read_book("Héloïse wept.".encode("latin-1"))
    assert book.chapters[0].text == "Héloïse wept."


def test_unicode_is_normalised_to_nfc():
    decomposed = "Zoe\u0308 smiled."  # e + combining diaeresis
    assert read_book(decomposed.encode()).chapters[0].text == "Zoë smiled."


def test_epub_spine_items_become_chapters(tmp_path):
    path = make_epub(
        tmp_path / "book.epub",
        [
            (
                "The Storm",
                "Mara climbed the stairs of the tower, counting each "
                "one as the wind rose outside.\n\nTobin waited.",
            ),
            (
                "The Rescue",
                "At dawn they pulled a sailor from the waves and "
                "carried him up the beach to the warm kitchen.",
            ),
        ],
    )
    book = read_file(path)
    assert book.format == "epub" and book.title == "A Test Book"
    assert [c.title for c in book.chapters] == ["The Storm", "The Rescue"]
    assert book.chapters[0].text.endswith("outside.\n\nTobin waited.")


def test_epub_with_drm_refused(tmp_path):
    path = with_drm(make_epub(tmp_path / "book.epub", [("One", PROSE * 3)]), tmp_path / "drm.epub")
    with pytest.raises(UnreadableBook, match="DRM-protected: 1 content file"):
        read_file(path)


def test_broken_epub_refused(tmp_path):
    good = make_epub(tmp_path / "book.epub", [("One", PROSE * 3)]).read_bytes()
    with pytest.raises(UnreadableBook, match="zip container is broken"):
        read_book(good[: len(good) // 2], filename="cut.epub")
    with pytest.raises(UnreadableBook, match="not a valid EPUB"):
        read_book(b"PK\x03\x04 this is not really a zip", filename="fake.epub")


def test_the_same_bytes_have_the_same_hash():
    assert read_book(PROSE.encode()).source_hash == read_book(PROSE.encode()).source_hash
