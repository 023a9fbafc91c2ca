"""jobpoll domain: jobs, their store, providers and the poll loop. Knows nothing of HTTP."""
