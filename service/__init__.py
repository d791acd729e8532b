"""HTTP concerns: schemas, authentication, jobs and the API routes."""
