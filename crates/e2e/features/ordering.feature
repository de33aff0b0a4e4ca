Feature: Processing orders
  A checked out basket becomes an order; the create-order saga authorizes the customer,
  creates the shopping list and confirms the payment, or rejects the order and undoes
  what it did.

  Background:
    Given a store "Waldorf Books" selling:
      | name         | price |
      | Gherkin Book | 12.50 |

  Scenario: An authorized order is approved
    Given a customer "Ada" with a payment authorized for 50.00
    When "Ada" orders 2 "Gherkin Book"
    Then the order is "approved"
    And the saga is "completed"
    And the shopping list is "available"

  Scenario: A disabled customer's order is rejected
    Given a customer "Ada" with a payment authorized for 50.00
    And "Ada" starts a basket
    And "Ada" adds 1 "Gherkin Book"
    And the customer "Ada" is disabled
    When "Ada" checks out
    Then the order is "rejected"
    And the saga is "compensated"
    And no shopping list was created

  Scenario: A payment too small rejects the order
    Given a customer "Ada" with a payment authorized for 20.00
    When "Ada" orders 2 "Gherkin Book"
    Then the order is "rejected"
    And the saga is "compensated"
    And the shopping list is "canceled"

  Scenario: An order cancelled while pending is not approved
    Given a customer "Ada" with a payment authorized for 50.00
    When "Ada" places an order for 2 "Gherkin Book" and cancels it at once
    Then the order is "cancelled"
    And the saga is "compensated"
    And the shopping list is "canceled"
