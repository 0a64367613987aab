"""Text features of a message, as the importer and the MTProto plugin compute them
(part of the versioned plugin API): ``extract(text, entities)`` gives the words, links,
mentions, hashtags and emoji counted in ``TextFeatures``.
"""

from tgstats.features import Entity, extract

__all__ = ["Entity", "extract"]
