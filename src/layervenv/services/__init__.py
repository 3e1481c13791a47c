"""Operations several commands share: installing packages, building stacks."""
