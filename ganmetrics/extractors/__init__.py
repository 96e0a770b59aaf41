"""Feature extractors other than the default Inception network (:mod:`ganmetrics.features`)."""
