"""The web UI: `web.render` turns typed answers into inert HTML; `web.app` builds and launches Gradio."""
