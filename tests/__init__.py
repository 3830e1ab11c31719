"""leadbot's tests, mirroring the packages."""
