"""`python app.py` (what `make run` runs): start the web app; the app itself is `web.app`.

Re-exports `build_app`, `launch` and `main` so `import app` keeps working.
Leaves out: everything else (web/app.py builds and launches, web/render.py renders).
"""

from __future__ import annotations

from web.app import build_app, launch, main

__all__ = ["build_app", "launch", "main"]

if __name__ == "__main__":
    main()
