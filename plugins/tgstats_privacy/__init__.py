"""The ``privacy`` plugin: retention, forgetting, opt-outs, data export, weekly digest.

See ``docs/privacy.md`` for what it means for members and admins.
"""

from .plugin import PrivacyPlugin

__all__ = ["PrivacyPlugin"]
