"""HTTP plumbing the service clients (shared/bigcommerce, shared/dataverse) have in common."""
