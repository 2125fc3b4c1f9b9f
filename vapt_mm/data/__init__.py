"""Image-caption data files in the layouts open_clip and ``vapt_mm.clip`` read.

Library API without framework imports, so that tools and data generators write
caption sets without importing open_clip (``vapt_mm.clip.data`` reads them).
"""
from .caption_files import write_caption_files

__all__ = ['write_caption_files']
