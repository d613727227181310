"""The activities service's adapters: :mod:`.mongo` implements the storage port on MongoDB (documents, indexes,
claims and the conditional commit in :mod:`.claims`, the premises as the database evaluates them in
:mod:`.expressions`)."""
