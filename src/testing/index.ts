// certkeeper/testing: helpers for people who implement certkeeper contracts.
export {};
