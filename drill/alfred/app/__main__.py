"""``python3 -m app <api|worker|proxy>`` (or APP_ROLE): the three roles of the service, as the TS drill's
``node server.js <role>``."""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

from .config import load_config, parse_role


def run_api() -> None:
    import uvicorn

    from .main import app

    cfg = load_config("api")

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.exit_signal = signal.Signals(sig).name
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=cfg.bind_host, port=cfg.port, access_log=False, proxy_headers=False,
                            log_level="warning", timeout_keep_alive=5, lifespan="on",
                            server_header=False)
    Server(config).run()


def main() -> None:
    role = parse_role(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("APP_ROLE"))
    if role is None:
        print("usage: python3 -m app <api|worker|proxy> (or set APP_ROLE)", file=sys.stderr)
        sys.exit(2)
    if role == "api":
        run_api()
    elif role == "worker":
        from .worker import main as worker_main

        worker_main()
    else:
        from .proxy import main as proxy_main

        proxy_main()


if __name__ == "__main__":
    main()
