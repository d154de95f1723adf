"""Images: content store, layers, archives, registry, bootstrap."""
