//! Debian packages fetched with `apt-get download` for the data they ship.
