"""Writers: the versioned JSON document, CSV tables and terminal tables."""
