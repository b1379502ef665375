from gql_jobs.cli import main

main()
