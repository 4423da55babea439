"""Email subscriptions: new comments on a post, new posts; double opt-in, one-click unsubscribe."""
