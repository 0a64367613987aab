"""The MTProto plugin of tgstats: Telegram updates → events, and bot commands.

Registered in the ``tgstats.plugins`` entry-point group as ``mtproto``. See
``plugin.py`` for the lifecycle and what survives a restart, ``handlers.py``
for the update → event handlers, ``commands.py`` for command dispatch and
``testing.py`` for the no-network harness tests (and plugin authors) use.
"""

from .plugin import MTProtoPlugin, TelegramStartError, build_client

__all__ = ["MTProtoPlugin", "TelegramStartError", "build_client"]
