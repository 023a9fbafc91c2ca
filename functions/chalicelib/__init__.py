"""jobpoll's deployed code: the domain (job, rules, policy, providers, engine messages), its ports and
adapters (store), the use cases (service, worker, jobs_api), and the HTTP edge (problems, views, gateway,
openapi), which alone knows HTTP."""
