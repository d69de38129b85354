//! Test bed for ci-doctor.
