"""The simulated wearable: camera, microphone, speaker, display, indicator light, buttons."""

# PyAV and opencv-python each bundle a libxcb-shm of the same file name, linked to different
# libxcb copies: if `av` loads first, every OpenCV window hangs. Every port module lives in
# this package, so loading cv2 here, before any of them imports av, fixes the order once.
import cv2  # noqa: F401,E402
