"""Frame sources (video file, image folder, array, camera) and label loaders."""
from stgraph.io.frames import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ArraySource, CameraSource, Frame,
                               FrameSource, ImageFolderSource, SourceError, VideoFileSource,
                               natural_key, open_source, FrameWindow, as_frame_source)

__all__ = ["ArraySource", "CameraSource", "Frame", "FrameSource", "ImageFolderSource", "SourceError",
           "VideoFileSource", "natural_key", "open_source", "FrameWindow", "as_frame_source", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS"]
