"""tgstats: self-hosted statistics for Telegram group chats."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tgstats")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
