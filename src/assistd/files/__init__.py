"""/v1/files: upload (streamed multipart), list, retrieve, delete, download; expiry sweeping."""
