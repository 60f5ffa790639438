"""Reading the live state: one customer's context, the catalogue searched by meaning, the embedder."""
