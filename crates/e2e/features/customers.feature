Feature: Registering customers
  A customer registers with a name and an SMS number before shopping; the mall can
  disable a customer, who can then no longer be authorized for an order.

  Scenario: Registering a new customer
    When I register a customer named "Ada" with SMS number "555-0100"
    Then the customer "Ada" has SMS number "555-0100" and is enabled

  Scenario: A customer needs a name
    When I register a customer named "" with SMS number "555-0100"
    Then the request is refused with 400 "the customer name cannot be blank"

  Scenario: A customer needs an SMS number
    When I register a customer named "Ada" with SMS number ""
    Then the request is refused with 400 "the SMS number cannot be blank"

  Scenario: Changing the SMS number
    Given a customer "Ada"
    When "Ada" changes the SMS number to "555-0199"
    Then the customer "Ada" has SMS number "555-0199" and is enabled

  Scenario: Disabling a customer
    Given a customer "Ada"
    When the customer "Ada" is disabled
    Then the customer "Ada" has SMS number "555-0100" and is disabled
    When the customer "Ada" is disabled
    Then the request is refused with 400 "the customer is already disabled"

  Scenario: Looking up an unknown customer
    When I look up the customer "nobody"
    Then the request is refused with 404 "customer with that ID does not exist"
