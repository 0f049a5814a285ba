"""``python -m huracan_assets.exchange.replay DIR [--port --host --now --faults]``: serve a candle folder."""

from huracan_assets.exchange.replay.app import main

if __name__ == "__main__":
    main()
