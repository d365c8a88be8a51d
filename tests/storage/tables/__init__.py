"""Tests of the tables component (DynamoDB API)."""
