"""HTTP only: one module per resource. Routers parse, call a query, shape the response."""
