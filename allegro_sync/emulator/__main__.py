"""``python -m allegro_sync.emulator``."""

from .server import main

raise SystemExit(main())
