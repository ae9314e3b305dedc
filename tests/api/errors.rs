//! Bad input always gets the error envelope.
