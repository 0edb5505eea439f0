"""Local-only tooling (moto bootstrap, dev web server, DNS, siteverify). Never deployed."""
