"""The simulated wearable: camera, microphone, speaker, display, indicator light, buttons."""
