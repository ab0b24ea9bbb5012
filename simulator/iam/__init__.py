"""IAM as AWS evaluates it: the stack's policies, the decision, and its enforcement on calls."""
