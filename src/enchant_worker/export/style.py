"""The stylesheet HTML and EPUB exports share (user CSS, sanitised, follows it)."""

BASE_CSS = """
body { font-family: Georgia, "Times New Roman", serif; line-height: 1.55; margin: 0 auto; max-width: 44em;
       padding: 1em; color: #222; background: #fff; }
h1, h2 { font-family: "Helvetica Neue", Arial, sans-serif; line-height: 1.2; }
h1.title { text-align: center; margin-top: 2em; }
p.author { text-align: center; font-style: italic; }
figure { margin: 1.5em 0; text-align: center; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; margin-top: 0.4em; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { flex: 1 1 14em; margin: 0; }
.panels { display: grid; grid-template-columns: repeat(2, 1fr); gap: 0.6em; }
figure.panel { margin: 0; border: 3px solid #111; background: #fff; }
figure.panel figcaption { background: #fffbe6; border-top: 2px solid #111; color: #111; padding: 0.3em 0.5em;
                          font-family: "Comic Sans MS", "Helvetica Neue", Arial, sans-serif; text-align: left; }
aside.notes { border: 1px solid #c90; background: #fff8e6; padding: 0.5em 1em; margin: 1em 0; }
nav ol { list-style: none; padding-left: 0; }
"""
