"""PyInstaller hook for Pygments, replacing the stock one (a hook in the spec's hookspath wins): TinyChat
only lexes code blocks, so it needs the lexers of the languages people ask a chat model about, not all
~600 lexers, the formatters and the styles (about 9 MB of sources). A fence in a language left out here
is shown uncoloured (app.chat.highlight.lexer_for answers None when a lexer module is missing)."""

LEXER_MODULES = (
    "python", "shell", "c_cpp", "javascript", "jvm", "rust", "go", "html", "css", "data", "sql", "configs",
    "dotnet", "ruby", "php", "diff", "make",
)
hiddenimports = [f"pygments.lexers.{name}" for name in LEXER_MODULES]
