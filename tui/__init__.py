"""portside's front ends: the full-screen app and the Docker-style CLI."""
