"""The local OpenAI-compatible HTTP server (`tinychat serve` and the window's "Serve on this computer"):
no Qt, so it runs headless and inside the window alike."""
