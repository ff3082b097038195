//! End-to-end tests of the workspace; the tests live in `tests/`.
