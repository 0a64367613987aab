from tests.pipeline.conftest import make_pipeline

__all__ = ["make_pipeline"]
