"""The job system, in layers; each imports only those below it (checked by import-linter):

api -> engine -> handlers (the job-author API) -> store -> observability -> domain, config.
"""
