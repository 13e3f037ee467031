"""Feature extraction and the content-hash keyed feature cache shared by every job."""
