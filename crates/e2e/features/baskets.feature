Feature: Filling baskets
  A customer starts a basket, adds and removes items and checks it out with an
  authorized payment.

  Background:
    Given a store "Waldorf Books" selling:
      | name         | price |
      | Gherkin Book | 12.50 |
      | Pact Book    |  9.99 |
    And a customer "Ada" with a payment authorized for 100.00

  Scenario: Starting a basket
    When "Ada" starts a basket
    Then the basket is empty

  Scenario: A basket needs a registered customer
    When the unknown customer "nobody" starts a basket
    Then the request is refused with 404 "customer with that ID does not exist"

  Scenario: Adding items
    Given "Ada" starts a basket
    When "Ada" adds 2 "Gherkin Book"
    And "Ada" adds 1 "Pact Book"
    And "Ada" adds 1 "Gherkin Book"
    Then the basket holds:
      | product      | store         | price | quantity |
      | Gherkin Book | Waldorf Books | 12.50 | 3        |
      | Pact Book    | Waldorf Books |  9.99 | 1        |

  Scenario: Adding an unknown product
    Given "Ada" starts a basket
    When "Ada" adds 1 of the unknown product "nothing"
    Then the request is refused with 404 "product fallback failed: product was not located"
    And the basket is empty

  Scenario: Removing items
    Given "Ada" starts a basket
    And "Ada" adds 3 "Gherkin Book"
    When "Ada" removes 2 "Gherkin Book"
    Then the basket holds:
      | product      | store         | price | quantity |
      | Gherkin Book | Waldorf Books | 12.50 | 1        |
    When "Ada" removes 1 "Gherkin Book"
    Then the basket is empty

  Scenario: Checking out
    Given "Ada" starts a basket
    And "Ada" adds 2 "Pact Book"
    When "Ada" checks out
    Then the order is "approved"
    And the order totals 19.98

  Scenario: An empty basket cannot be checked out
    Given "Ada" starts a basket
    When "Ada" checks out
    Then the request is refused with 400 "the basket has no items"

  Scenario: A checked out basket cannot change
    Given "Ada" starts a basket
    And "Ada" adds 1 "Pact Book"
    And "Ada" checks out
    When "Ada" adds 1 "Gherkin Book"
    Then the request is refused with 400 "the basket cannot be modified"
