"""The core: what every other package may use and what uses nothing of the project
(reason codes and errors, credentials, names, crypto, the retry policy)."""
