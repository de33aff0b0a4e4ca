Feature: Searching orders
  The search module keeps a read model of orders, with the names of customers, stores
  and products, updated as each order moves on.

  Background:
    Given a store "Waldorf Books" selling:
      | name         | price |
      | Gherkin Book | 12.50 |
      | Pact Book    |  9.99 |
    And a customer "Ada" with a payment authorized for 100.00

  Scenario: Finding an order by id
    When "Ada" orders 2 "Gherkin Book"
    Then search finds the order "approved" for "Ada" totalling 25.00 with items:
      | store         | product      | quantity |
      | Waldorf Books | Gherkin Book | 2        |

  Scenario: Finding a customer's orders by status
    When "Ada" orders 1 "Gherkin Book"
    And "Ada" orders 1 "Pact Book"
    Then searching "Ada"'s "approved" orders finds 2 orders
    And searching "Ada"'s "completed" orders finds 0 orders
