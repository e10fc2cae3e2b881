"""Authentication: principals, bearer and session guards, browser sessions, OIDC sign-in, their tables."""
